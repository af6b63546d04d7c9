Console.WriteLine("pagoda");
